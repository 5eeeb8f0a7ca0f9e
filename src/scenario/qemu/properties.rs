//! The properties of an `-object` or `-device`, in keyval or JSON form,
//! and their values read as QEMU's keyval and JSON visitors read them:
//! booleans, sizes (a bare number is bytes), strings and whole numbers.

use super::QemuError;
use super::reader::Reader;
use super::words::{Span, Text, parse_uint, qapi_bool};
use crate::units::ByteSize;

/// A property value, from keyval text or from the JSON form of `-object`.
#[derive(Debug, Clone)]
pub(super) enum Val {
    Text(Text),
    Json(serde_json::Value),
}

/// One property of an `-object` / `-device`: the key, the value, and where
/// to point when it is wrong.
#[derive(Debug, Clone)]
pub(super) struct Prop {
    pub(super) key: String,
    pub(super) val: Val,
    pub(super) span: Span,
}

impl Reader<'_> {
    pub(super) fn json_object(
        &self,
        opt: &Text,
        arg: &Text,
    ) -> Result<serde_json::Map<String, serde_json::Value>, QemuError> {
        match serde_json::from_str::<serde_json::Value>(&arg.s) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => Err(self.err(arg.span, format!("`{}` JSON must be an object {{...}}", self.raw(opt.span)))),
            Err(e) => Err(self.err(arg.span, format!("`{}` JSON does not parse: {e}", self.raw(opt.span)))),
        }
    }

    // Property values, as QEMU's keyval and JSON visitors read them.

    pub(super) fn prop_bool(&self, ctx: &str, p: &Prop) -> Result<bool, QemuError> {
        match &p.val {
            Val::Text(t) => qapi_bool(&t.s).ok_or_else(|| {
                self.err(
                    p.span,
                    format!(
                        "`{}` in {ctx}: {} takes on or off (QEMU also accepts yes/no, true/false, y/n)",
                        self.raw(p.span),
                        p.key
                    ),
                )
            }),
            Val::Json(v) => v
                .as_bool()
                .ok_or_else(|| self.err(p.span, format!("\"{}\": {v} in {ctx} must be JSON true or false", p.key))),
        }
    }

    /// Sizes of -object properties go through qemu_strtosz: a bare number
    /// is bytes (not MiB as for -m).
    pub(super) fn prop_size(&self, ctx: &str, p: &Prop) -> Result<ByteSize, QemuError> {
        match &p.val {
            Val::Text(t) => ByteSize::parse_with_default_unit(&t.s, 1).map_err(|e| {
                let hint = if t.s.ends_with(|c: char| c.is_ascii_digit()) {
                    " (note: a bare number here is bytes, not MiB)"
                } else {
                    ""
                };
                self.err(p.span, format!("bad size `{}` in {ctx}: {e}{hint}", self.raw(p.span)))
            }),
            Val::Json(v) => v
                .as_u64()
                .map(ByteSize)
                .ok_or_else(|| self.err(p.span, format!("\"{}\": {v} in {ctx} must be a JSON number of bytes", p.key))),
        }
    }

    pub(super) fn prop_str(&self, ctx: &str, p: &Prop) -> Result<String, QemuError> {
        match &p.val {
            Val::Text(t) => Ok(t.s.clone()),
            Val::Json(serde_json::Value::String(s)) => Ok(s.clone()),
            Val::Json(v) if p.key.starts_with("host-nodes") && v.is_array() => Ok(v.to_string()),
            Val::Json(v) => Err(self.err(p.span, format!("\"{}\": {v} in {ctx} must be a JSON string", p.key))),
        }
    }

    pub(super) fn prop_uint(&self, ctx: &str, p: &Prop) -> Result<u64, QemuError> {
        match &p.val {
            Val::Text(t) => parse_uint(&t.s).ok_or_else(|| {
                self.err(p.span, format!("`{}` in {ctx}: {} takes a whole number", self.raw(p.span), p.key))
            }),
            Val::Json(v) => v
                .as_u64()
                .ok_or_else(|| self.err(p.span, format!("\"{}\": {v} in {ctx} must be a JSON whole number", p.key))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fails, gib, ok};

    // qapi_bool_parse: on/yes/true/y and off/no/false/n, nothing else.
    #[test]
    fn backend_booleans() {
        for (word, v) in [
            ("on", true),
            ("yes", true),
            ("true", true),
            ("y", true),
            ("off", false),
            ("no", false),
            ("false", false),
            ("n", false),
        ] {
            let q = ok(&format!("-object memory-backend-ram,id=m,size=1G,merge={word} -machine memory-backend=m"));
            assert_eq!(q.merge, Some(v), "{word}");
        }
        let e = fails("-object memory-backend-ram,id=m,size=1G,share=maybe -machine memory-backend=m");
        assert_eq!((e.token.as_str(), e.offset), ("share=maybe", 40));
        assert!(e.message.contains("share takes on or off"), "{}", e.message);
        fails("-object memory-backend-ram,id=m,size=1G,share=ON -machine memory-backend=m");
    }

    // qemu-options.hx: -object also takes JSON, as libvirt writes it; JSON
    // sizes are numbers of bytes and booleans are JSON booleans.
    #[test]
    fn object_json_form() {
        let q = ok(
            r#"-object '{"qom-type":"memory-backend-file","id":"pc.ram","mem-path":"/dev/hugepages/libvirt/qemu/1-vm","x-use-canonical-path-for-ramblock-id":false,"prealloc":true,"size":4294967296}' -machine pc-q35-8.2,memory-backend=pc.ram -m size=4194304k"#,
        );
        assert_eq!((q.memory, q.hugepages, q.prealloc), (gib(4), Some(true), Some(true)));
        let e = fails(r#"-object '{"qom-type":"memory-backend-ram","id":"m","size":"4G"}' -machine memory-backend=m"#);
        assert!(e.message.contains("must be a JSON number of bytes"), "{}", e.message);
        let e = fails(r#"-object '{"qom-type":"memory-backend-ram","id":"m","size":1,"share":"on"}'"#);
        assert!(e.message.contains("must be JSON true or false"), "{}", e.message);
        fails(r#"-object '{"qom-type":'"#);
        fails(r#"-object '{"id":"m","size":1}'"#);
    }
}
