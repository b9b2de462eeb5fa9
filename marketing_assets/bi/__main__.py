import sys

from marketing_assets.bi.server import main

if __name__ == "__main__":
    sys.exit(main())
