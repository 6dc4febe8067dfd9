from snnconv.cli.main import main

main()
