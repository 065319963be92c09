"""Export scikit-learn's bundled UCI digits as an ImageFolder to train on (no download: the data ships with sklearn).

    python samples/export_digits.py digits/
    visionkit train classify --data digits/ --model lenet5 --epochs 30 --out runs/digits-lenet5
    visionkit eval classify --model runs/digits-lenet5 --images digits/test --labels digits/test/labels.csv

digits/train, digits/val and digits/test hold one folder per digit (0..9) of 8x8 grey PNGs (60/20/20 %,
stratified, seeded); each split's labels.csv (file,class_index) is what `visionkit eval classify` reads.
"""

from __future__ import annotations

import argparse

from visionkit.training.data import export_digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to create (train/, val/, test/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stratified split (default: 0)")
    args = parser.parse_args()
    print(export_digits(args.out, seed=args.seed))


if __name__ == "__main__":
    main()
