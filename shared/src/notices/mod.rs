//! Notices (docs/decisions.md §10, §13 "Notices"): admins post them with a target, a verified
//! HAT lists those addressed to it and marks them read (the first read time stays).

pub mod model;
pub mod ports;
pub mod service;

pub use model::{Notice, NoticeItem, NoticeTarget};
pub use ports::NoticeStore;
pub use service::{NewNotice, NoticeService};
