use mmapipc::rkyv::{Archive, Serialize};
use mmapipc::IpcMessage;

#[derive(Archive, Serialize, IpcMessage)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "geo.Point", version = 3)]
pub struct Point { pub x: f32, pub y: f32 }

#[derive(Archive, Serialize, IpcMessage)]
#[rkyv(crate = mmapipc::rkyv)]
pub struct Path { pub id: u64, pub start: Point, pub points: Vec<f32>, pub name: String, pub tags: [[u8; 4]; 2], pub r#type: u8 }

#[allow(dead_code)]
fn check() {
    use mmapipc::IpcMessage as _;
    let s = Path::schema();
    assert_eq!(s.name, "Path");
    assert_eq!(Point::VERSION, 3);
    assert!(s.fields.iter().any(|f| f.name == "type"));
}

fn main() {}
