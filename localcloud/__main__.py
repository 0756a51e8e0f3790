from localcloud.stack import main

main()
