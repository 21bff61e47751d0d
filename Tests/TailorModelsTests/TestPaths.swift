import Foundation

/// Where tests find the real models and the shared golden references.
enum TestPaths {
    static let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let golden = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/golden")

    static var modelCache: URL {
        if let home = ProcessInfo.processInfo.environment["TAILOR_HOME"], !home.isEmpty {
            return URL(fileURLWithPath: home).appendingPathComponent("models")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tailor/models")
    }

    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    /// The path of a model in the cache. A missing model is a failure, never a skip: run ./scripts/setup.
    static func model(_ name: String) throws -> String {
        let p = modelCache.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: p) else {
            throw Missing(description: "model \(name) is not in \(modelCache.path); run ./scripts/setup to fetch it")
        }
        return p
    }

    static func goldenJSON(_ name: String) throws -> Any {
        let data = try Data(contentsOf: golden.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data)
    }
}

extension TestPaths {
    static func fixtureText(_ name: String) throws -> String {
        guard let url = Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil) else {
            throw Missing(description: "fixture \(name) is missing")
        }
        return try String(contentsOf: url, encoding: .utf8)
    }
}
