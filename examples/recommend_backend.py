"""Which backend should we use? The four worked examples from docs/choosing-a-backend.md.

    python examples/recommend_backend.py

Each line of the output names the recommended backend, the string that adopts it and the rule that
decided. The CLI gives the same answers: ``trackkit recommend --team-size 3 --budget paid --no-privacy
--no-production``.
"""

from __future__ import annotations

from typing import Any

from trackkit.recommend import recommend

EXAMPLES: dict[str, dict[str, Any]] = {
    "solo student": {"team_size": 1, "budget": "free", "privacy": False, "production": False},
    "3-person startup": {"team_size": 3, "budget": "paid", "privacy": False, "production": False},
    "10-person team with private data": {"team_size": 10, "budget": "paid", "privacy": True, "production": False},
    "production team": {"team_size": 8, "budget": "free", "privacy": False, "production": True, "cloud": "azure"},
}


def main() -> None:
    for name, answers in EXAMPLES.items():
        rec = recommend(**answers)
        print(f"== {name}: {rec.backend} ({rec.backend_string}), decided by the {rec.decided_by} rule")
        for reason in rec.reasons:
            print(f"   why: {reason}")
        if rec.alternatives:
            print(f"   runner-up: {rec.alternatives[0].why_not}")
        if rec.cloud_note:
            print(f"   cloud: {rec.cloud_note}")
    print()
    print(recommend(team_size=1, budget="free", privacy=False, production=False).switch_note)


if __name__ == "__main__":
    main()
