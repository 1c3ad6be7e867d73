from dossierhub.cli import main

main()
