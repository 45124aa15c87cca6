#!/usr/bin/python3
"""pgnode.py - stands in for the faceauth binary in two-node mode (pgmode.py).

Sets FACEAUTH_DATABASE to the database of the data folder named by --data
(created on first use) and execs the real binary, named by
FA_E2E_REAL_BINARY, with the same arguments: same process id, same exit
code, same output, so a test cannot tell it is there.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgmode  # noqa: E402


def main():
    real = os.environ[pgmode.REAL_BINARY_ENV]
    argv = sys.argv[1:]
    # Without --data (help, compare, embed...) no database is made: a
    # command that needs one then uses the default, as a user's would.
    data = pgmode.data_dir_of(argv)
    if data is not None:
        os.environ["FACEAUTH_DATABASE"] = pgmode.database_for(data)
    os.execv(real, [real] + argv)


if __name__ == "__main__":
    main()
