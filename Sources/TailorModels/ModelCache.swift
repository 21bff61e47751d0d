// Where models live: $TAILOR_HOME/models (default ~/.cache/tailor/models), and how a name a user
// types ("smollm2", a file name, a path) becomes a file.
import Foundation

public enum ModelCache {
    public static let defaultChatModel = "SmolLM2-135M-Instruct.Q4_1.gguf"
    public static let defaultEmbeddingModel = "all-MiniLM-L6-v2"

    public static var home: URL {
        if let h = ProcessInfo.processInfo.environment["TAILOR_HOME"], !h.isEmpty { return URL(fileURLWithPath: h) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tailor")
    }

    public static var directory: URL { home.appendingPathComponent("models") }

    public struct Entry: Sendable {
        public let name: String
        public let path: String
        public let bytes: Int64
        public let isDirectory: Bool
    }

    /// Everything in the cache, by name.
    public static func list() -> [Entry] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory.path) else { return [] }
        return names.sorted().compactMap { name in
            guard !name.hasPrefix("."), !name.hasSuffix(".partial") else { return nil }
            let p = directory.appendingPathComponent(name).path
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: p, isDirectory: &isDir) else { return nil }
            return Entry(name: name, path: p, bytes: size(p), isDirectory: isDir.boolValue)
        }
    }

    static func size(_ path: String) -> Int64 {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return 0 }
        if !isDir.boolValue { return (try? fm.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0 }
        var total: Int64 = 0
        if let e = fm.enumerator(atPath: path) {
            while let f = e.nextObject() as? String { total += (try? fm.attributesOfItem(atPath: path + "/" + f)[.size] as? Int64) ?? 0 }
        }
        return total
    }

    /// Resolves a model given by path, by cache name, or by a unique part of a cache name
    /// (case-insensitive). nil gives the default chat model.
    public static func resolve(_ spec: String?, default def: String = defaultChatModel) throws -> String {
        let s = spec ?? def
        let expanded = (s as NSString).expandingTildeInPath
        if FileManager.default.fileExists(atPath: expanded) { return expanded }
        let entries = list()
        if let e = entries.first(where: { $0.name == s }) { return e.path }
        let matches = entries.filter { $0.name.lowercased().contains(s.lowercased()) }
        if matches.count == 1 { return matches[0].path }
        if matches.count > 1 {
            throw ModelError.modelNotFound("\(s)\" matches several models (\(matches.map(\.name).joined(separator: ", "))); be more specific")
        }
        throw ModelError.modelNotFound(s)
    }
}
