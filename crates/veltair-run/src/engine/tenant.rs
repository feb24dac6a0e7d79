//! A model the engine serves: its plan (weights read in place from the mapped bundle), its
//! kernels mapped once, its profile, and a bounded pool of activation arenas (one per query in
//! flight, which also bounds its queue).

use crate::sched::ModelProfile;
use std::sync::Mutex;
use veltair_exec::Plan;
use veltair_load::{LoadError, LoadedKernel};

/// One served model.
pub struct Tenant {
    pub name: String,
    pub plan: Plan,
    pub kernels: Vec<LoadedKernel>,
    pub profile: ModelProfile,
    /// Arenas not in use; a query takes one at arrival and gives it back when answered.
    arenas: Mutex<Vec<Vec<f32>>>,
    /// Queries of this model allowed in flight (queued or running) at once.
    pub capacity: usize,
}

impl Tenant {
    /// Maps `plan`'s kernels (refusing a host without their CPU features) and prepares up to
    /// `capacity` arenas lazily.
    pub fn new(plan: Plan, profile: ModelProfile, capacity: usize) -> Result<Tenant, LoadError> {
        let kernels = plan.kernels.iter().map(LoadedKernel::load).collect::<Result<Vec<_>, _>>()?;
        Ok(Tenant {
            name: profile.name.clone(),
            plan,
            kernels,
            profile,
            arenas: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
        })
    }

    /// An arena for a new query (reused when one is free).
    pub fn take_arena(&self) -> Vec<f32> {
        let reused = self.arenas.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| vec![0.0; self.plan.arena_elems])
    }

    /// Returns an arena to the pool.
    pub fn give_arena(&self, arena: Vec<f32>) {
        self.arenas.lock().unwrap_or_else(|e| e.into_inner()).push(arena);
    }
}
