//! A GEMM-family step (plain GEMM, convolution as implicit GEMM, Winograd's batched GEMMs) in
//! all its versions: the layer's candidate schedules from the schedule space, compiled into
//! one kernel each. The versions share the packed weights (every candidate has the same panel
//! width) and one scratch buffer sized for the largest.

use crate::builder::{Arg, PendingVersion};
use crate::lowerer::{Fail, Lowerer};
use crate::space::{gemm_candidates, Candidate};
use veltair_codegen::gemm::{compile_batched_gemm, compile_gemm, Bias, GemmBatch, GemmSpec};

impl Lowerer<'_> {
    /// The candidate schedules of `spec` (the default first), as many as the options ask for.
    /// `kc_for(cap)` is the layer's k-block for a cap on its length.
    pub(crate) fn gemm_schedules(&self, spec: &GemmSpec, kc_for: impl Fn(usize) -> usize) -> Vec<Candidate> {
        let o = self.options;
        gemm_candidates((spec.m, spec.n, spec.k), kc_for, o.max_threads, &o.caches, o.versions.max(1))
    }

    /// Appends the step computing `spec` under each of `candidates`, over `args` (the kernel's
    /// argument table without its scratch buffer, which is added here). `batch` makes each
    /// version a batched GEMM.
    pub(crate) fn gemm_step(
        &mut self,
        label: String,
        work: u64,
        spec: &GemmSpec,
        candidates: &[Candidate],
        batch: Option<&GemmBatch>,
        mut args: Vec<Arg>,
    ) -> Result<(), Fail> {
        let at = 3 + !matches!(spec.bias, Bias::None) as usize;
        let scratch_elems = candidates.iter().map(|c| spec.arg_elems(&c.schedule)[at]).max().unwrap_or(0);
        args.insert(at, Arg::Buf(self.plan.buffer(scratch_elems)));
        let prefix = batch.map(|b| format!("{} x ", b.count)).unwrap_or_default();
        let mut versions = Vec::with_capacity(candidates.len());
        for c in candidates {
            let s = c.schedule;
            let kernel = match batch {
                None => {
                    let spec = spec.clone();
                    self.kernel(format!("{spec:?} {s:?}"), move |t| compile_gemm(&spec, &s, t))?
                }
                Some(&b) => {
                    let spec = spec.clone();
                    self.kernel(format!("{spec:?} {s:?} {b:?}"), move |t| compile_batched_gemm(&spec, &s, &b, t))?
                }
            };
            versions.push(PendingVersion {
                kernel,
                args: args.clone(),
                schedule: format!("{prefix}{}\n{}", spec.domain(), s.to_schedule(spec)),
                footprint: c.footprint.total(),
            });
        }
        self.plan.step_versions(label, work, versions);
        Ok(())
    }
}
