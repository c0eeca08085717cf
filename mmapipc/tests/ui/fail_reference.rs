use mmapipc::IpcMessage;

#[derive(IpcMessage)]
pub struct Borrowed { pub name: &'static str }

fn main() {}
