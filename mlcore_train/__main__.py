import sys

from mlcore_train.cli import main

sys.exit(main())
