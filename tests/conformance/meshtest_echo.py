"""tests/conformance/meshtest_echo.py — meshtest.Echo (echo.proto) for the Python test programs.

The message classes are generated at run time with protoc (protobuf-compiler, tools/deps.sh)
into a temporary directory, so no generated code is checked in and echo.proto stays the only
definition; the service itself is wired by hand with grpc's generic handlers and
unary_unary, which needs no grpc-tools stubs.
"""
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
METHOD = '/meshtest.Echo/Who'


def load():
    """Returns the echo_pb2 module (WhoRequest, Reply)."""
    tmp = tempfile.mkdtemp(prefix='meshtest-pb-')
    try:
        subprocess.run(['protoc', '-I' + HERE, '--python_out=' + tmp, 'echo.proto'],
                       check=True, capture_output=True)
        sys.path.insert(0, tmp)
        try:
            return importlib.import_module('echo_pb2')
        finally:
            sys.path.remove(tmp)
    except subprocess.CalledProcessError as e:
        sys.exit('meshtest_echo: protoc failed on echo.proto: ' + e.stderr.decode(errors='replace'))
    except FileNotFoundError:
        sys.exit('meshtest_echo: protoc is not installed (tools/deps.sh installs protobuf-compiler)')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
