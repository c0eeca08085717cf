use mmapipc::rkyv::{Archive, Serialize};
use mmapipc::IpcMessage;

#[derive(Archive, Serialize, IpcMessage)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(nmae = "x.T")]
pub struct T { pub a: u32 }

fn main() {}
