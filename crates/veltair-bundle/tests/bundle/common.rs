//! Shared fixtures: a seeded generator, a realistic bundle and helpers that patch a bundle and
//! recompute its checksums, so tests can reach the checks behind the CRCs.

use prost::Message;
use veltair_bundle::{
    arg::Region, write, ArenaRegion, Arg, BundleParts, Calibration, Constant, DType, Header, Kernel, Latency, Layer,
    Level, Manifest, Port, Version,
};

/// Offset of the header length field.
pub const HEADER_LEN_AT: usize = 12;
/// Offset of the section table; entries are offset u64, length u64, CRC32 u32.
pub const TABLE_AT: usize = 16;
/// Bytes of one section table entry.
pub const ENTRY_LEN: usize = 20;

/// xorshift64*: small, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// The pieces of a bundle, owned.
pub struct Sample {
    pub header: Header,
    pub manifest: Manifest,
    pub code: Vec<Vec<u8>>,
    pub weights: Vec<Vec<f32>>,
}

impl Sample {
    pub fn parts(&self) -> BundleParts<'_> {
        self.parts_with(self.manifest.clone())
    }

    pub fn parts_with(&self, manifest: Manifest) -> BundleParts<'_> {
        BundleParts {
            header: self.header.clone(),
            manifest,
            code: self.code.iter().map(Vec::as_slice).collect(),
            weights: self.weights.iter().map(Vec::as_slice).collect(),
        }
    }
}

fn arena(offset: u64, len: u64) -> Arg {
    Arg { region: Some(Region::Arena(ArenaRegion { offset, len })) }
}

fn constant(index: u32) -> Arg {
    Arg { region: Some(Region::Constant(index)) }
}

fn port(name: &str, shape: &[u64], dtype: DType, offset: u64) -> Port {
    Port { name: name.into(), shape: shape.to_vec(), dtype: dtype as i32, offset, element: 1, fixed: None }
}

fn kernel(alignment: u64, arg_elems: &[u64], max_threads: u32) -> Kernel {
    Kernel { code_offset: 0, code_len: 0, alignment, arg_elems: arg_elems.to_vec(), max_threads }
}

fn version(kernel: u32, args: Vec<Arg>, widths: (u32, u32), latencies: &[(u32, u32, f64)]) -> Version {
    Version {
        kernel,
        args,
        schedule: format!("tile 8x8, widths {}..={}", widths.0, widths.1),
        min_width: widths.0,
        max_width: widths.1,
        footprint_bytes: 4096 * u64::from(kernel + 1),
        latencies: latencies.iter().map(|&(width, level, seconds)| Latency { width, level, seconds }).collect(),
    }
}

/// A realistic bundle: four kernels (alignments 16 and 64), five constants of odd lengths,
/// three layers with several versions each, an I64 input and a calibration.
pub fn sample() -> Sample {
    let mut rng = Rng::new(0x5eed);
    let code = [37, 100, 13, 64].into_iter().map(|n| rng.bytes(n)).collect();
    let mut weights: Vec<Vec<f32>> = [81, 3, 37, 10, 1]
        .into_iter()
        .map(|n| (0..n).map(|_| f32::from_bits(rng.next_u64() as u32)).collect())
        .collect();
    weights[1] = vec![-0.0, f32::MIN_POSITIVE, f32::INFINITY];
    let conv_args = |a: u64| vec![arena(0, 192), constant(0), constant(1), arena(a, 768)];
    let manifest = Manifest {
        model: "tiny-cnn".into(),
        inputs: vec![port("x", &[1, 3, 8, 8], DType::F32, 0), port("ids", &[1, 4], DType::I64, 192)],
        outputs: vec![port("y", &[1, 10], DType::F32, 200)],
        arena_elems: 4096,
        kernels: vec![
            kernel(16, &[192, 81, 3, 768], 4),
            kernel(64, &[192, 81, 3, 768], 8),
            kernel(16, &[768, 37, 10], 4),
            kernel(64, &[10, 1, 10], 2),
        ],
        constants: vec![Constant { offset: 0, elems: 0 }; 5],
        layers: vec![
            Layer {
                label: "conv1".into(),
                macs: 41_472,
                qos_weight: 1.0,
                versions: vec![
                    version(0, conv_args(1000), (1, 4), &[(1, 0, 2.5e-5), (4, 0, 8.0e-6), (2, 1, 1.9e-5)]),
                    version(1, conv_args(1000), (2, 8), &[(8, 0, 4.0e-6), (2, 2, 3.1e-5)]),
                ],
            },
            Layer {
                label: "gemm".into(),
                macs: 7_680,
                qos_weight: 0.5,
                versions: vec![
                    version(2, vec![arena(1000, 768), constant(2), arena(2000, 10)], (1, 4), &[(1, 0, 1.0e-6)]),
                    version(2, vec![arena(1000, 768), constant(2), arena(2000, 10)], (1, 2), &[]),
                    version(2, vec![arena(1000, 768), constant(2), arena(2000, 10)], (3, 4), &[(3, 1, 2.0e-6)]),
                ],
            },
            Layer {
                label: "head".into(),
                macs: 10,
                qos_weight: 2.0,
                versions: vec![
                    version(3, vec![arena(2000, 10), constant(4), arena(200, 10)], (1, 2), &[(2, 0, 1.0e-7)]),
                    version(3, vec![arena(2000, 10), constant(4), arena(200, 10)], (1, 1), &[(1, 2, 3.0e-7)]),
                ],
            },
        ],
        calibration: Some(Calibration {
            reference: "stream-triad".into(),
            levels: vec![
                Level { level: 0, slowdown: 1.0, stream_threads: 0, thrash_threads: 0, intensity: 0.0 },
                Level { level: 1, slowdown: 1.3, stream_threads: 1, thrash_threads: 0, intensity: 0.5 },
                Level { level: 2, slowdown: 2.1, stream_threads: 1, thrash_threads: 1, intensity: 1.0 },
            ],
        }),
        max_threads: 8,
    };
    let features = ["avx2", "fma", "sse4.1"].map(String::from).to_vec();
    Sample { header: Header::new("veltair 0.1.0", "x86_64-unknown-linux-gnu", features), manifest, code, weights }
}

/// The written sample bundle.
pub fn sample_bytes() -> Vec<u8> {
    write(&sample().parts()).expect("the sample is valid")
}

pub fn u32_at(file: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(file[at..at + 4].try_into().unwrap())
}

pub fn u64_at(file: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(file[at..at + 8].try_into().unwrap())
}

/// File offset, length and CRC field offset of section `index` (0 manifest, 1 code, 2 weights).
pub fn section(file: &[u8], index: usize) -> (usize, usize, usize) {
    let at = TABLE_AT + index * ENTRY_LEN;
    (u64_at(file, at) as usize, u64_at(file, at + 8) as usize, at + 16)
}

/// Recomputes the header CRC after the header was patched.
pub fn reseal_header(file: &mut [u8]) {
    let len = u32_at(file, HEADER_LEN_AT) as usize;
    let crc = crc32fast::hash(&file[..len - 4]);
    file[len - 4..len].copy_from_slice(&crc.to_le_bytes());
}

/// Recomputes section `index`'s CRC and the header CRC after the section was patched.
pub fn reseal_section(file: &mut [u8], index: usize) {
    let (offset, len, crc_at) = section(file, index);
    let crc = crc32fast::hash(&file[offset..offset + len]);
    file[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    reseal_header(file);
}

/// `file` with its manifest changed by `mutate` and every checksum made valid again.
pub fn resign(file: &[u8], mutate: impl FnOnce(&mut Manifest)) -> Vec<u8> {
    let (offset, len, _) = section(file, 0);
    let (code_start, _, _) = section(file, 1);
    let mut manifest = Manifest::decode(&file[offset..offset + len]).unwrap();
    mutate(&mut manifest);
    let encoded = manifest.encode_to_vec();
    assert!(offset + encoded.len() <= code_start, "the changed manifest must still fit before the code");
    let mut out = file[..offset].to_vec();
    out.extend_from_slice(&encoded);
    out.resize(code_start, 0);
    out.extend_from_slice(&file[code_start..]);
    out[TABLE_AT + 8..TABLE_AT + 16].copy_from_slice(&(encoded.len() as u64).to_le_bytes());
    reseal_section(&mut out, 0);
    out
}
