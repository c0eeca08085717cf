use mmapipc::rkyv::{Archive, Serialize};
use mmapipc::IpcMessage;

#[derive(Archive, Serialize, IpcMessage)]
#[rkyv(crate = mmapipc::rkyv)]
pub struct Wrapper<T> { pub value: T }

fn main() {}
