from sigil.cli import main; raise SystemExit(main())
