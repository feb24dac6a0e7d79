"""Write the ONNX backend *node* tests of the pinned onnx package to DIR/node/<test>/.

onnx 1.23.2 ships no pre-generated node test data in its wheel, and its
`python -m onnx.backend.test.cmd_tools generate-data` only emits the model test cases
(`real`, `simple`). So we run the same writer, cmd_tools.generate_data, over the node test
cases from onnx.backend.test.case.node.collect_testcases() instead. Layout per test:
model.onnx + test_data_set_0/input_N.pb, output_N.pb (serialized TensorProto, or
Sequence/Optional/Map protos for the few tests whose graph I/O are not tensors).

The wheel's pre-generated model tests `simple/`, `pytorch-converted/` and `pytorch-operator/`
(same layout) are copied beside it, to DIR/<folder>/.

Usage: gen_conformance.py DIR
"""

import argparse
import shutil
import types
import warnings
from pathlib import Path

import onnx.backend.test.case.node as node_cases
from onnx.backend.test import cmd_tools

WHEEL_FOLDERS = ("simple", "pytorch-converted", "pytorch-operator")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path, help="output directory (tests go to DIR/node/)")
    out = ap.parse_args().dir
    # Some reference computations divide by zero on purpose (expected inf outputs).
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    # generate_data() writes whatever model_test.collect_testcases() returns; point it at the
    # node cases (each has kind "node", hence the DIR/node/ prefix).
    cmd_tools.model_test = types.SimpleNamespace(collect_testcases=node_cases.collect_testcases)
    shutil.rmtree(out / "node", ignore_errors=True)
    cmd_tools.generate_data(argparse.Namespace(output=str(out)))
    data = Path(cmd_tools.__file__).parent / "data"
    for folder in WHEEL_FOLDERS:
        shutil.rmtree(out / folder, ignore_errors=True)
        shutil.copytree(data / folder, out / folder)


if __name__ == "__main__":
    main()
