//! Multi-tenant scheduling: model profiles from bundles, the core set, policies, the contention
//! monitor, the scheduler state machine (shared by the runtime and the simulator), arrival
//! traces and the discrete-event simulator.

pub mod cores;
pub mod monitor;
pub mod policy;
pub mod profile;
pub mod scheduler;
pub mod sim;
pub mod trace;

pub use policy::{Granularity, Order, Policy, VersionPolicy};
pub use profile::{level_scale, share_reference, ModelProfile};
pub use scheduler::{BlockStart, LayerTime, QueryDone, SchedStats, Scheduler};
pub use sim::{simulate, InSitu, Machine, SimRun};
pub use trace::{confirmed_share, poisson, quantile, search_rate, Arrival, Outcome, QOS_SHARE};
