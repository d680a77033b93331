import sys

from touchstream.cli import main

sys.exit(main())
