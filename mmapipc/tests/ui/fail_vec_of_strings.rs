use mmapipc::rkyv::{Archive, Serialize};
use mmapipc::IpcMessage;

#[derive(Archive, Serialize, IpcMessage)]
#[rkyv(crate = mmapipc::rkyv)]
pub struct T { pub names: Vec<String> }

fn main() {}
