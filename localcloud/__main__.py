from localcloud.stack.cli import main

main()
