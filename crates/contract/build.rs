//! Compiles `proto/` into Rust with protox (pure Rust), so a fresh machine
//! needs no system `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "safeguard/common/v1/common.proto",
        "safeguard/events/v1/envelope.proto",
        "safeguard/events/v1/log.proto",
        "safeguard/events/v1/status.proto",
        "safeguard/events/v1/access.proto",
        "safeguard/referral/v1/referral.proto",
        "safeguard/conference/v1/conference.proto",
        "safeguard/registry/v1/registry.proto",
        "safeguard/notification/v1/notification.proto",
    ];
    println!("cargo:rerun-if-changed={}", proto_root.display());
    let descriptors = protox::compile(files, [&proto_root])?;
    // Kept for gRPC reflection, so tools like grpcurl can explore the API.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("safeguard_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    // Every message knows its protobuf name (`prost::Name`): an event's
    // content type is the full name of its payload message.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds_with_config(descriptors, config)?;
    Ok(())
}
