from minop.cli import main

raise SystemExit(main())
