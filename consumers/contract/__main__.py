"""Regenerate the shipped contract files: `python -m consumers.contract`."""

from consumers.contract.generate import write_all

if __name__ == "__main__":
    for path in write_all():
        print(path)
