use mmapipc::rkyv::{Archive, Serialize};
use mmapipc::IpcMessage;

#[derive(Archive, Serialize)]
#[rkyv(crate = mmapipc::rkyv)]
pub struct NotAMessage { pub a: u32 }

#[derive(Archive, Serialize, IpcMessage)]
#[rkyv(crate = mmapipc::rkyv)]
pub struct T { pub inner: NotAMessage }

fn main() {}
