import sys

from marketing_assets.bi.server import main

sys.exit(main())
