from tokenusage.cli import main

raise SystemExit(main())
