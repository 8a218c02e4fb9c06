from pbxwatch.cli import main

raise SystemExit(main())
