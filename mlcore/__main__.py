import sys

sys.exit("mlcore is the serving library; train, evaluate and write model cards with `python -m mlcore_train`")
