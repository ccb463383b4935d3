from obpilot.cli.main import main

main()
