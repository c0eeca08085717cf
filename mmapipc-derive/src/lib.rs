//! `#[derive(IpcMessage)]`: gives a struct a message schema computed from its archived layout.
//!
//! Use it next to rkyv's derives; see `mmapipc::typed::schema` for what the schema holds.
//!
//! ```text
//! #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, mmapipc::IpcMessage)]
//! #[rkyv(crate = mmapipc::rkyv)]
//! #[ipc(name = "market.Tick", version = 1)]
//! pub struct Tick { pub timestamp_ns: u64, pub price: f64, pub size: u32, pub side: u8 }
//! ```
//!
//! The macro only reads the struct's syntax; offsets and sizes come from the compiler
//! (`offset_of!` and `size_of` on `<T as Archive>::Archived`), so they are always the real ones.
//! Every error points at the offending item and says what to do instead.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Fields, LitInt, LitStr, Type};

/// Derives `mmapipc::IpcMessage` (and `SchemaType`, so the struct can be nested).
///
/// Attributes: `#[ipc(name = "pkg.Name", version = N)]`; both optional (defaults: the type's
/// name and version 1).
#[proc_macro_derive(IpcMessage, attributes(ipc))]
pub fn derive_ipc_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input).unwrap_or_else(syn::Error::into_compile_error).into()
}

struct Attrs {
    name: Option<String>,
    version: u32,
}

fn parse_attrs(input: &DeriveInput) -> syn::Result<Attrs> {
    let mut attrs = Attrs { name: None, version: 1 };
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("ipc")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                let v = lit.value();
                if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(syn::Error::new_spanned(
                        lit,
                        "ipc name must be non-empty and contain no whitespace, e.g. \"market.Tick\"",
                    ));
                }
                attrs.name = Some(v);
                Ok(())
            } else if meta.path.is_ident("version") {
                let lit: LitInt = meta.value()?.parse()?;
                let v: u32 = lit.base10_parse()?;
                if v == 0 {
                    return Err(syn::Error::new_spanned(lit, "ipc version starts at 1"));
                }
                attrs.version = v;
                Ok(())
            } else {
                Err(meta.error("unknown ipc attribute; expected `name = \"...\"` or `version = N`"))
            }
        })?;
    }
    Ok(attrs)
}

/// Rejects field types that can never be archived in place, with a precise message. Types that
/// pass here are still checked by the `SchemaType` bound, whose error also points at the field.
fn check_field_type(ty: &Type) -> syn::Result<()> {
    let bad = |msg: &str| Err(syn::Error::new_spanned(ty, msg));
    match ty {
        Type::Reference(_) => {
            bad("references cannot be sent between processes; store the value (or a fixed array / Vec) instead")
        }
        Type::Ptr(_) => bad("raw pointers cannot be sent between processes; store the value or an offset instead"),
        Type::Tuple(t) if !t.elems.is_empty() => {
            bad("tuples are not supported in IPC messages; use a nested #[derive(IpcMessage)] struct with named fields")
        }
        Type::Tuple(_) => bad("unit `()` fields carry no data; remove the field"),
        Type::TraitObject(_) | Type::ImplTrait(_) => bad("trait objects have no fixed layout; use a concrete type"),
        Type::Slice(_) => bad("unsized slices are not supported; use a fixed array [T; N] or Vec<T>"),
        Type::Array(a) => check_field_type(&a.elem),
        Type::Path(p) => {
            if let Some(last) = p.path.segments.last() {
                let id = last.ident.to_string();
                let hint = match id.as_str() {
                    "Option" => Some("Option fields are not supported yet; use a flag field plus a value, or a Vec with 0 or 1 elements"),
                    "Box" | "Rc" | "Arc" => Some("pointer types are not supported; store the value inline"),
                    "HashMap" | "BTreeMap" | "HashSet" | "BTreeSet" => Some("maps and sets are not supported; use Vec of a nested struct"),
                    "usize" | "isize" => Some("usize/isize differ between platforms; use u64/i64 (or u32/i32)"),
                    "char" => Some("char is not supported; use u32"),
                    "u128" | "i128" => Some("128-bit integers are not supported; use two u64 fields"),
                    _ => None,
                };
                if let Some(h) = hint {
                    return bad(h);
                }
                if id == "Vec" {
                    if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
                        for arg in &args.args {
                            if let syn::GenericArgument::Type(inner) = arg {
                                if !matches!(inner, Type::Path(_)) {
                                    return Err(syn::Error::new_spanned(
                                        inner,
                                        "a Vec field must hold primitives (u8..u64, i8..i64, f32, f64, bool)",
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            Ok(())
        }
        _ => bad("unsupported field type for an IPC message"),
    }
}

fn expand(input: DeriveInput) -> syn::Result<TokenStream2> {
    let attrs = parse_attrs(&input)?;
    let ident = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&input.generics, "IpcMessage cannot be derived for generic types: a message needs one fixed layout; define a concrete struct"));
    }
    let fields =
        match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(named) => &named.named,
                Fields::Unnamed(u) => return Err(syn::Error::new_spanned(
                    u,
                    "IpcMessage needs named fields (the schema lists fields by name); use `struct T { a: u32, ... }`",
                )),
                Fields::Unit => {
                    return Err(syn::Error::new(
                        ident.span(),
                        "IpcMessage cannot be derived for a unit struct: it carries no data",
                    ))
                }
            },
            Data::Enum(e) => {
                return Err(syn::Error::new(
                    e.enum_token.span,
                    "IpcMessage supports structs only; encode the variant as an integer field",
                ))
            }
            Data::Union(u) => {
                return Err(syn::Error::new(u.union_token.span, "IpcMessage supports structs only, not unions"))
            }
        };
    if fields.is_empty() {
        return Err(syn::Error::new(ident.span(), "IpcMessage needs at least one field"));
    }
    let name = attrs.name.unwrap_or_else(|| ident.to_string());
    let version = attrs.version;
    let mut entries = Vec::new();
    for f in fields {
        check_field_type(&f.ty)?;
        let fname = f.ident.as_ref().ok_or_else(|| syn::Error::new(Span::call_site(), "unnamed field"))?;
        let fname_str = fname.to_string();
        let fname_str = fname_str.strip_prefix("r#").unwrap_or(&fname_str).to_string();
        let ty = &f.ty;
        // The bound check is spanned at the field type, so an unsupported type is reported there.
        entries.push(quote_spanned! {ty.span()=>
            ::mmapipc::typed::schema::Field {
                name: ::std::string::String::from(#fname_str),
                ty: <#ty as ::mmapipc::typed::SchemaType>::type_desc(),
                offset: ::core::mem::offset_of!(__MmapipcArchived, #fname) as u32,
                size: ::core::mem::size_of::<<#ty as ::mmapipc::rkyv::Archive>::Archived>() as u32,
            }
        });
    }
    Ok(quote! {
        const _: () = {
            type __MmapipcArchived = <#ident as ::mmapipc::rkyv::Archive>::Archived;

            impl ::mmapipc::typed::SchemaType for #ident {
                fn type_desc() -> ::mmapipc::typed::schema::TypeDesc {
                    let s = <#ident as ::mmapipc::typed::IpcMessage>::schema();
                    ::mmapipc::typed::schema::TypeDesc::Struct { name: s.name, size: s.size, align: s.align, fields: s.fields }
                }
            }

            impl ::mmapipc::typed::IpcMessage for #ident {
                const NAME: &'static str = #name;
                const VERSION: u32 = #version;
                fn schema() -> ::mmapipc::typed::Schema {
                    ::mmapipc::typed::Schema::new(
                        #name,
                        #version,
                        ::core::mem::size_of::<__MmapipcArchived>(),
                        ::core::mem::align_of::<__MmapipcArchived>(),
                        ::std::vec![#(#entries),*],
                    )
                }
            }
        };
    })
}
