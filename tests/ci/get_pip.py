"""Offline stand-in for the get-pip script ansible-test downloads.

ansible-test fetches get-pip from a host these machines cannot reach unless a
copy sits in ~/.ansible/test/cache/. This file is installed there by the
Makefile: it installs pip with ensurepip and then whatever ansible-test asks
for, from the package index pip is configured with.
"""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
