use mmapipc::rkyv::{Archive, Serialize};
use mmapipc::IpcMessage;

#[derive(Archive, Serialize, IpcMessage)]
#[rkyv(crate = mmapipc::rkyv)]
pub struct T { pub pair: (u32, u32) }

fn main() {}
