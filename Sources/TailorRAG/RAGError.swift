import Foundation

/// What went wrong in the knowledge base, with how to fix it.
public enum RAGError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case unsupportedType(path: String)
    case badEncoding(path: String, detail: String)
    case badRecord(path: String, line: Int, detail: String)
    case noTextField(path: String, line: Int, fields: [String])
    case pdf(path: String, detail: String)
    case docx(path: String, detail: String)
    case collectionNotFound(String, known: [String])
    case modelMismatch(collection: String, built: String, requested: String)
    case store(String)
    case badFilter(String)
    case badInput(String)
    /// A PostgreSQL store's server said no or could not be reached (`url` has no password).
    case postgres(url: String, detail: String, sqlState: String?)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read (\(reason))"
        case let .unsupportedType(path):
            return "\(path): no loader for this file type (supported: .txt .md .html .pdf .docx .csv .tsv .json .jsonl)"
        case let .badEncoding(path, detail): return "\(path): \(detail)"
        case let .badRecord(path, line, detail): return "\(path):\(line): \(detail)"
        case let .noTextField(path, line, fields):
            return "\(path):\(line): no text field found among \(fields.isEmpty ? "(none)" : fields.joined(separator: ", ")); name it with --text-field FIELD"
        case let .pdf(path, detail): return "\(path): not a readable PDF (\(detail))"
        case let .docx(path, detail): return "\(path): not a readable DOCX (\(detail))"
        case let .collectionNotFound(name, known):
            return "no collection named '\(name)'" + (known.isEmpty ? "; create one with `tailor ingest PATH -c \(name)`" : " (collections: \(known.joined(separator: ", ")))")
        case let .modelMismatch(collection, built, requested):
            return "collection '\(collection)' was embedded with \(built), not \(requested). Search it with -m \(built), or re-embed it with `tailor reindex -c \(collection) -m \(requested)`"
        case let .store(detail): return "collection store: \(detail)"
        case let .badFilter(detail): return "bad filter: \(detail)"
        case let .badInput(detail): return detail
        case let .postgres(url, detail, _): return "PostgreSQL at \(url): \(detail)"
        }
    }
}
