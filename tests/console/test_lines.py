"""Console bytes to stored lines: progress-bar rewrites, escapes, UTF-8 split across reads."""

from __future__ import annotations

from trackkit.console import LineAssembler


def _lines(*chunks: bytes, close: bool = True) -> list[str]:
    out: list[str] = []
    asm = LineAssembler(out.append)
    for c in chunks:
        asm.feed(c)
    if close:
        asm.close()
    return out


def test_a_progress_bar_is_stored_as_its_final_line() -> None:
    frames = b"".join(b"\r%3d%%|" % i + b"#" * (i // 10) for i in range(0, 101))
    assert _lines(b"epoch 1\n", frames, b"\n", b"done\n") == ["epoch 1", "100%|##########", "done"]


def test_tqdm_style_frames_split_across_reads_and_crlf() -> None:
    assert _lines(b"a 10%", b"\ra 50", b"%\ra 100%\r", b"\n", b"win\r\n") == ["a 100%", "win"]


def test_escape_sequences_are_removed_from_what_is_stored() -> None:
    assert _lines(b"\x1b[31mred\x1b[0m plain\n", b"\x1b]0;title\x07after\n") == ["red plain", "after"]


def test_utf8_split_in_the_middle_of_a_character() -> None:
    data = "héllo wörld ✓\n".encode()
    assert _lines(data[:2], data[2:9], data[9:]) == ["héllo wörld ✓"]


def test_a_last_line_without_newline_is_kept_at_the_end() -> None:
    assert _lines(b"one\ntwo", close=False) == ["one"]
    assert _lines(b"one\ntwo") == ["one", "two"]


def test_thousands_of_frames_keep_memory_bounded() -> None:
    out: list[str] = []
    asm = LineAssembler(out.append)
    for i in range(20_000):
        asm.feed(b"\rstep %d" % i)
    assert len(asm._partial) < 100  # the bound itself is what is tested
    asm.close()
    assert out == ["step 19999"]
