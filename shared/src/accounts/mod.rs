//! DEX accounts (docs/decisions.md §3): the model, its storage port and the use cases.

pub mod first_admin;
pub mod login_limits;
pub mod model;
pub mod ports;
pub mod service;

pub use first_admin::{FirstAdmin, LoginService};
pub use login_limits::{FailureCount, LimitKeys, LoginLimitStore, LoginLimits};
pub use model::{
    Account, AccountChange, AccountGuard, AccountView, Actor, MAX_ACCOUNT_ID_LEN, MAX_USERNAME_LEN,
    NewAccount, PasswordChange, check_account_id, guard_changed, normalise_username,
};
pub use ports::AccountStore;
pub use service::AccountService;
