"""Drives a running `veltair-run serve` with the official Triton/KServe v2 HTTP client
(tritonclient): liveness, readiness, model metadata, one inference checked against expected
outputs. Inputs and expected outputs are raw little-endian f32 files written by the Rust test.

Usage: triton_e2e.py URL MODEL INPUT_NAME INPUT_SHAPE(1x3x64x64) INPUT.bin OUTPUT_NAME EXPECTED.bin
Prints one line of JSON; exit status 0 when everything matched, 1 otherwise."""
import json
import sys

import numpy as np
import tritonclient.http as httpclient


def main():
    url, model, in_name, in_shape, in_file, out_name, expected_file = sys.argv[1:8]
    shape = [int(d) for d in in_shape.split("x")]
    client = httpclient.InferenceServerClient(url=url)
    checks = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
    }
    meta = client.get_model_metadata(model)
    checks["metadata_input"] = meta["inputs"][0]["name"] == in_name and meta["inputs"][0]["datatype"] == "FP32"
    data = np.fromfile(in_file, dtype="<f4").reshape(shape)
    infer_input = httpclient.InferInput(in_name, shape, "FP32")
    infer_input.set_data_from_numpy(data, binary_data=False)
    output = httpclient.InferRequestedOutput(out_name, binary_data=False)
    result = client.infer(model, [infer_input], outputs=[output])
    got = result.as_numpy(out_name).astype(np.float64).ravel()
    want = np.fromfile(expected_file, dtype="<f4").astype(np.float64)
    max_abs = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
    checks["output_matches"] = bool(got.shape == want.shape and np.all(np.abs(got - want) <= 1e-4 + 1e-3 * np.abs(want)))
    print(json.dumps({"checks": checks, "max_abs_err": max_abs}))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
