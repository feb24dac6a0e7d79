//! The manifest messages: what the compiled model needs from the runtime (ports, arena size,
//! kernels, constants, layers with their versions and measured latencies, calibration). Written
//! by hand with prost derives; the tags below are the wire format and must never be reused.

/// How a model input or output is stored in the arena (its declared element type is
/// [`Port::element`]): floats of any width as f32, integers and booleans as i64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DType {
    /// 32-bit float, one arena slot per element.
    F32 = 0,
    /// 64-bit integer, two arena slots per element.
    I64 = 1,
}

impl DType {
    /// Arena slots (f32-sized) that one element occupies.
    pub fn slots(self) -> u64 {
        match self {
            DType::F32 => 1,
            DType::I64 => 2,
        }
    }
}

/// The whole manifest section.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Manifest {
    /// Model name.
    #[prost(string, tag = "1")]
    pub model: String,
    /// Model inputs, in the model's order.
    #[prost(message, repeated, tag = "2")]
    pub inputs: Vec<Port>,
    /// Model outputs, in the model's order.
    #[prost(message, repeated, tag = "3")]
    pub outputs: Vec<Port>,
    /// Size of the activation arena in f32 elements.
    #[prost(uint64, tag = "4")]
    pub arena_elems: u64,
    /// Compiled kernels, indexed by [`Version::kernel`].
    #[prost(message, repeated, tag = "5")]
    pub kernels: Vec<Kernel>,
    /// Constants (weights), indexed by [`arg::Region::Constant`].
    #[prost(message, repeated, tag = "6")]
    pub constants: Vec<Constant>,
    /// Layers in execution order.
    #[prost(message, repeated, tag = "7")]
    pub layers: Vec<Layer>,
    /// How the contention levels of [`Latency::level`] were produced, if they were.
    #[prost(message, optional, tag = "8")]
    pub calibration: Option<Calibration>,
    /// Largest thread count the bundle was compiled for.
    #[prost(uint32, tag = "9")]
    pub max_threads: u32,
}

/// A model input or output living in the arena.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Port {
    /// Tensor name in the source model.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Static shape.
    #[prost(uint64, repeated, tag = "2")]
    pub shape: Vec<u64>,
    /// Arena storage, a [`DType`].
    #[prost(enumeration = "DType", tag = "3")]
    pub dtype: i32,
    /// First arena slot.
    #[prost(uint64, tag = "4")]
    pub offset: u64,
    /// The model's element type, as an ONNX `TensorProto.DataType` code (1 float, 7 int64,
    /// 9 bool, ...); converted from and to the arena storage at the boundary.
    #[prost(int32, tag = "5")]
    pub element: i32,
    /// For an input the compiler fixed because it determines shapes: the value it was
    /// compiled for (the runtime refuses any other; such a port has no arena storage).
    #[prost(message, optional, tag = "6")]
    pub fixed: Option<Fixed>,
}

/// The value of a fixed input, row-major: floats for float element types, integers for the
/// others (booleans as 0/1).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Fixed {
    #[prost(double, repeated, tag = "1")]
    pub floats: Vec<f64>,
    #[prost(sint64, repeated, tag = "2")]
    pub ints: Vec<i64>,
}

/// One kernel's machine code in the code section.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Kernel {
    /// Byte offset within the code section; filled by the writer.
    #[prost(uint64, tag = "1")]
    pub code_offset: u64,
    /// Code length in bytes; filled by the writer.
    #[prost(uint64, tag = "2")]
    pub code_len: u64,
    /// Required alignment of the code, a power of two no larger than [`crate::CODE_ALIGN`].
    #[prost(uint64, tag = "3")]
    pub alignment: u64,
    /// Minimum element count of each argument buffer.
    #[prost(uint64, repeated, tag = "4")]
    pub arg_elems: Vec<u64>,
    /// Most threads the kernel can use.
    #[prost(uint32, tag = "5")]
    pub max_threads: u32,
}

/// One constant (f32 little-endian) in the weights section.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Constant {
    /// Byte offset within the weights section; filled by the writer.
    #[prost(uint64, tag = "1")]
    pub offset: u64,
    /// Element count; filled by the writer.
    #[prost(uint64, tag = "2")]
    pub elems: u64,
}

/// One layer of the model, runnable by any of its versions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Layer {
    /// Human-readable label, used in error messages and profiles.
    #[prost(string, tag = "1")]
    pub label: String,
    /// Multiply-accumulates of one run.
    #[prost(uint64, tag = "2")]
    pub macs: u64,
    /// Weight of this layer in quality-of-service accounting.
    #[prost(double, tag = "3")]
    pub qos_weight: f64,
    /// Alternative implementations; at least one.
    #[prost(message, repeated, tag = "4")]
    pub versions: Vec<Version>,
}

/// One implementation of a layer: a kernel bound to its arguments and a width range.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Version {
    /// Index into [`Manifest::kernels`].
    #[prost(uint32, tag = "1")]
    pub kernel: u32,
    /// Arguments, one per [`Kernel::arg_elems`].
    #[prost(message, repeated, tag = "2")]
    pub args: Vec<Arg>,
    /// Description of the schedule, for profiles.
    #[prost(string, tag = "3")]
    pub schedule: String,
    /// Fewest threads this version runs on.
    #[prost(uint32, tag = "4")]
    pub min_width: u32,
    /// Most threads this version runs on.
    #[prost(uint32, tag = "5")]
    pub max_width: u32,
    /// Bytes the version touches per run.
    #[prost(uint64, tag = "6")]
    pub footprint_bytes: u64,
    /// Measured latencies.
    #[prost(message, repeated, tag = "7")]
    pub latencies: Vec<Latency>,
}

/// One kernel argument.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Arg {
    /// Where the argument's buffer lives.
    #[prost(oneof = "arg::Region", tags = "1, 2")]
    pub region: Option<arg::Region>,
}

/// The region of an [`Arg`].
pub mod arg {
    /// Where an argument's buffer lives.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Region {
        /// A range of the activation arena.
        #[prost(message, tag = "1")]
        Arena(super::ArenaRegion),
        /// A constant, by index into [`super::Manifest::constants`].
        #[prost(uint32, tag = "2")]
        Constant(u32),
    }
}

/// A range of the arena, in f32 elements.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArenaRegion {
    /// First element.
    #[prost(uint64, tag = "1")]
    pub offset: u64,
    /// Element count.
    #[prost(uint64, tag = "2")]
    pub len: u64,
}

/// The measured median latency of a version at one width and contention level.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Latency {
    /// Threads used.
    #[prost(uint32, tag = "1")]
    pub width: u32,
    /// Contention level, see [`Calibration`].
    #[prost(uint32, tag = "2")]
    pub level: u32,
    /// Median seconds per run.
    #[prost(double, tag = "3")]
    pub seconds: f64,
}

/// How contention levels were produced on the compiling machine.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Calibration {
    /// Reference workload the slowdowns are measured on.
    #[prost(string, tag = "1")]
    pub reference: String,
    /// Levels numbered 0, 1, ... in order.
    #[prost(message, repeated, tag = "2")]
    pub levels: Vec<Level>,
}

/// One contention level.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Level {
    /// The level's number, equal to its index.
    #[prost(uint32, tag = "1")]
    pub level: u32,
    /// Slowdown of the reference workload at this level, at least 1.
    #[prost(double, tag = "2")]
    pub slowdown: f64,
    /// Memory-streaming background threads.
    #[prost(uint32, tag = "3")]
    pub stream_threads: u32,
    /// Cache-thrashing background threads.
    #[prost(uint32, tag = "4")]
    pub thrash_threads: u32,
    /// Intensity of the background load.
    #[prost(double, tag = "5")]
    pub intensity: f64,
}
