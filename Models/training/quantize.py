#!/usr/bin/env python3
"""INT8 variants of the shipped models (for comparison; not shipped).

  python3 Models/training/quantize.py     -> Models/training/build/<name>.int8.onnx
  python3 Models/training/evaluate.py --int8   compares size / latency / quality

Dynamic quantization (int8 weights, activations quantized on the fly) is the only
onnxruntime.quantization mode that fits these graphs: they are DSP front ends (STFT,
pooling, ratios, logs) whose activations span many decades, which static (calibrated)
activation quantization would destroy. Only MatMul/Gemm/Conv weights are candidates.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MODELS_DIR  # noqa: E402

BUILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build")


def main():
    from onnxruntime.quantization import quantize_dynamic, QuantType
    import onnx
    os.makedirs(BUILD, exist_ok=True)
    for name in ["motion", "sound", "anomaly"]:
        src = os.path.join(MODELS_DIR, f"{name}.onnx")
        dst = os.path.join(BUILD, f"{name}.int8.onnx")
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        m = onnx.load(dst)
        q = sum(1 for n in m.graph.node if n.op_type in ("MatMulInteger", "DynamicQuantizeLinear", "ConvInteger"))
        print(f"{name}: {os.path.getsize(src)} B -> {os.path.getsize(dst)} B, integer/quant nodes {q}")


if __name__ == "__main__":
    main()
