//! A small CBOR writer for test bodies, written from RFC 8949 (independent of the crate's
//! encoder), with definite and indefinite lengths as different SDKs send them.

pub(crate) enum C {
    Text(&'static str),
    OwnedText(String),
    Float(f64),
    Int(i64),
    Bool(bool),
    Tag1(f64),
    Array(Vec<C>),
    Map(Vec<(&'static str, C)>),
    /// An indefinite-length map.
    MapIndef(Vec<(&'static str, C)>),
    /// An indefinite-length array.
    ArrayIndef(Vec<C>),
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend(s.as_bytes());
}

pub(crate) fn write(out: &mut Vec<u8>, c: &C) {
    match c {
        C::Text(s) => text(out, s),
        C::OwnedText(s) => text(out, s),
        C::Float(f) => {
            out.push(0xfb);
            out.extend(f.to_be_bytes());
        }
        C::Int(i) if *i >= 0 => head(out, 0, *i as u64),
        C::Int(i) => head(out, 1, (-1 - *i) as u64),
        C::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        C::Tag1(secs) => {
            out.push(0xc1);
            write(out, &C::Float(*secs));
        }
        C::Array(items) => {
            head(out, 4, items.len() as u64);
            items.iter().for_each(|i| write(out, i));
        }
        C::ArrayIndef(items) => {
            out.push(0x9f);
            items.iter().for_each(|i| write(out, i));
            out.push(0xff);
        }
        C::Map(entries) => {
            head(out, 5, entries.len() as u64);
            for (k, v) in entries {
                text(out, k);
                write(out, v);
            }
        }
        C::MapIndef(entries) => {
            out.push(0xbf);
            for (k, v) in entries {
                text(out, k);
                write(out, v);
            }
            out.push(0xff);
        }
    }
}

pub(crate) fn bytes(c: &C) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, c);
    out
}
