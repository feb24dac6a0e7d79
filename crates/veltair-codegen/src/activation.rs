//! Element-wise activations applied by generated kernels just before they store a result.

use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

/// Element-wise function applied to a layer's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    None,
    Relu,
    /// `min(max(x, min), max)` (ReLU6 is `Clip { min: 0.0, max: 6.0 }`).
    Clip {
        min: f32,
        max: f32,
    },
}

impl Activation {
    /// Emits the activation of an f32x4 value.
    pub fn apply(self, b: &mut FunctionBuilder, v: Value) -> Value {
        let splat = |b: &mut FunctionBuilder, x: f32| {
            let c = b.ins().f32const(x);
            b.ins().splat(types::F32X4, c)
        };
        match self {
            Activation::None => v,
            Activation::Relu => {
                let zero = splat(b, 0.0);
                b.ins().fmax(v, zero)
            }
            Activation::Clip { min, max } => {
                let lo = splat(b, min);
                let hi = splat(b, max);
                let v = b.ins().fmax(v, lo);
                b.ins().fmin(v, hi)
            }
        }
    }
}
