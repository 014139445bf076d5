import sys

from seqmarl.cli import main

sys.exit(main())
