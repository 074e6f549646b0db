from trackkit.cli import main

main()
