// swift-tools-version:6.0
// Vigil: edge-inference daemon for Linux IoT gateways.
// No package dependencies: Foundation, Dispatch, Synchronization and three C libraries
// (ONNX Runtime's C API, libmosquitto, SQLite 3), each behind one wrapper module.
import PackageDescription

let package = Package(
    name: "vigil",
    products: [
        .executable(name: "vigild", targets: ["vigild"]),
        .executable(name: "vigilctl", targets: ["vigilctl"]),
    ],
    targets: [
        // C modules: a modulemap and a shim header each; nothing but the wrappers imports them.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto",
                       providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(name: "COnnxRuntime", pkgConfig: "libonnxruntime",
                       providers: [.apt(["libonnxruntime-dev"])]),

        // Swift wrappers: with Sockets, the only modules that call C or lend pointers
        // (docs/architecture.md, "Unsafe code", lists the exceptions left in VigilCore and VigilTools).
        .target(name: "SQLite", dependencies: ["CSQLite"]),
        .target(name: "MQTT", dependencies: ["CMosquitto"]),
        .target(name: "ONNX", dependencies: ["COnnxRuntime"]),

        // The POSIX calls of the service layer (sd_notify datagrams, the /metrics listener, the
        // journal's file, `syscall` with EINTR retried, signals): Glibc only.
        .target(name: "Sockets"),

        .target(name: "VigilCore", dependencies: ["SQLite", "MQTT", "ONNX", "Sockets"]),
        // What only vigilctl runs (queries, the simulator, the HTML report): its own target so
        // vigild does not link it.
        .target(name: "VigilTools", dependencies: ["VigilCore", "SQLite", "MQTT", "ONNX"]),
        .executableTarget(name: "vigild", dependencies: ["VigilCore"]),
        .executableTarget(name: "vigilctl", dependencies: ["VigilCore", "VigilTools", "Sockets"]),
        // Store benchmark (scripts/bench-store); not shipped.
        .executableTarget(name: "vigil-bench", dependencies: ["VigilCore", "SQLite", "MQTT"]),

        .testTarget(name: "SQLiteTests", dependencies: ["SQLite"]),
        .testTarget(name: "MQTTTests", dependencies: ["MQTT", "TestSupport"]),
        .testTarget(name: "ONNXTests", dependencies: ["ONNX", "TestSupport"]),
        .testTarget(name: "VigilCoreTests", dependencies: ["VigilCore", "VigilTools", "TestSupport", "Sockets"]),
        .testTarget(name: "IntegrationTests",
                    dependencies: ["VigilCore", "VigilTools", "SQLite", "ONNX", "TestSupport", "Sockets", "vigild", "vigilctl"]),
        // Failure scenarios against the real binary (issue 9): `make resilience`.
        .testTarget(name: "ResilienceTests",
                    dependencies: ["VigilCore", "VigilTools", "SQLite", "ONNX", "TestSupport", "vigild", "vigilctl"]),
        .target(name: "TestSupport", dependencies: ["MQTT"], path: "Tests/TestSupport", exclude: ["Fixtures"]),
    ]
)
