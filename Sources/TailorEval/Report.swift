// The comparison's report: the recommendation that follows from the measured numbers and what
// the user declared, a Markdown file and a self-contained HTML page with SVG charts.
import Foundation
import TailorFormats

public enum DataChange: String, Codable, CaseIterable, Sendable {
    case never, monthly, weekly, daily
}

/// What the user tells us about their product.
public struct Declared: Codable, Sendable {
    public var changes: DataChange = .monthly
    /// Longest acceptable p95 latency per answer.
    public var latencyBudgetMs: Double?
    /// Longest acceptable training run.
    public var trainingBudgetMinutes: Double?
    public init() {}
}

public struct Recommendation: Codable, Sendable {
    public var system: SystemKind
    public var headline: String
    public var reasons: [String]
}

public struct ComparisonReport: Codable, Sendable {
    public var title: String
    public var model: String
    public var evalPath: String
    public var kind: TaskKind
    public var items: Int
    public var summaries: [SystemSummary]
    public var costs: Costs
    public var declared: Declared
    public var freshness: [SystemSummary]?
    public var freshItems: Int?
    public var recommendation: Recommendation
    public var notes: [String]
    public var date: String

    public var primary: String { Summaries.primary(kind) }

    public func summary(_ s: SystemKind) -> SystemSummary? { summaries.first { $0.system == s } }
}

public enum Advisor {
    static let complexity: [SystemKind] = [.base, .rag, .classifier, .tuned, .tunedRAG]

    static func metricTitle(_ m: String) -> String {
        ["f1": "token F1", "exact_match": "exact match", "contains": "answer contains", "retrieval_recall": "retrieval recall",
         "citations_valid": "valid citations", "accuracy": "accuracy", "macro_f1": "macro-F1", "rouge_l": "ROUGE-L", "chrf": "chrF"][m] ?? m
    }

    static func points(_ x: Double) -> String { String(format: "%+.1f", 100 * x) }

    public static func recommend(kind: TaskKind, summaries: [SystemSummary], costs: Costs, declared: Declared,
                                 freshness: [SystemSummary]?) -> Recommendation {
        let m = Summaries.primary(kind), title = metricTitle(m)
        func score(_ s: SystemKind) -> Double? { summaries.first { $0.system == s }?.metrics[m]?.mean }
        guard let base = score(.base) else {
            return Recommendation(system: summaries.first?.system ?? .base, headline: "No base-model results to compare with.", reasons: [])
        }
        var reasons: [String] = []
        var feasible: [SystemKind] = []
        for s in summaries {
            var ok = true
            if let budget = declared.latencyBudgetMs, s.latencyP95Ms > budget {
                reasons.append(String(format: "%@ is too slow: p95 %.0f ms > the %.0f ms budget.", s.system.title, s.latencyP95Ms, budget))
                ok = false
            }
            if s.system.needsTraining, let budget = declared.trainingBudgetMinutes,
               let t = s.system == .classifier ? costs.classifierTrainingSeconds : costs.trainingSeconds, t / 60 > budget {
                reasons.append(String(format: "%@ needs %.1f min of training > the %.0f min budget.", s.system.title, t / 60, budget))
                ok = false
            }
            if s.system == .tuned, kind == .qa, declared.changes == .weekly || declared.changes == .daily {
                let t = costs.trainingSeconds.map { String(format: " (%.1f min per run)", $0 / 60) } ?? ""
                reasons.append("The data changes \(declared.changes.rawValue): a fine-tuned model knows only what it was trained on and would need retraining at every change\(t).")
                ok = false
            }
            if ok { feasible.append(s.system) }
        }
        // Candidates: feasible systems better than the base by a significant margin (p < 0.05).
        let better = feasible.filter { s in
            guard s != .base, let v = score(s), let sum = summaries.first(where: { $0.system == s }) else { return false }
            return v > base && (sum.pValueVsBase[m] ?? 1) < 0.05
        }
        var choice: SystemKind = .base
        if let best = better.max(by: { score($0)! < score($1)! }) {
            choice = best
            // Prefer a simpler system when it is not measurably worse (within the best's interval).
            let bestEstimate = summaries.first { $0.system == best }!.metrics[m]!
            for s in complexity where better.contains(s) && complexity.firstIndex(of: s)! < complexity.firstIndex(of: best)! {
                if let v = score(s), v >= bestEstimate.low {
                    reasons.append(String(format: "%@ (%.3f) is within the interval of %@ (%.3f–%.3f) and simpler.", s.title, v, best.title, bestEstimate.low, bestEstimate.high))
                    choice = s
                    break
                }
            }
        }
        // The headline: each system's gain over the base, then the reason for the choice.
        var gains: [String] = []
        for s in summaries where s.system != .base {
            guard let v = s.metrics[m]?.mean else { continue }
            let p = s.pValueVsBase[m].map { $0 < 0.001 ? "p < 0.001" : String(format: "p = %.3f", $0) } ?? ""
            gains.append("\(s.system.title): \(points(v - base)) points \(title) over base (\(p))")
        }
        var why: String
        switch choice {
        case .base: why = "no approach measurably beats the base model → keep the base model"
        case .rag: why = declared.changes == .never ? "→ ship RAG" : "data changes \(declared.changes.rawValue) → ship RAG"
        case .tuned: why = "→ ship the fine-tuned model"
        case .tunedRAG: why = "→ ship the fine-tuned model with RAG"
        case .classifier: why = "→ ship the fine-tuned encoder classifier"
        }
        if let fresh = freshness, let fr = fresh.first(where: { $0.system == .rag })?.metrics[m]?.mean,
           let ft = fresh.first(where: { $0.system == .tuned })?.metrics[m]?.mean {
            reasons.append(String(format: "On facts added after training, RAG scores %.3f and the fine-tuned model %.3f %@ (no retraining).", fr, ft, title))
        }
        let head = gains.joined(separator: "; ")
        let headline = head.isEmpty ? why : head + (why.hasPrefix("→") ? " " : "; ") + why
        return Recommendation(system: choice, headline: headline, reasons: reasons)
    }
}

public enum ReportWriter {
    static func fmt(_ e: Estimate?) -> String {
        guard let e else { return "—" }
        return String(format: "%.3f (%.3f–%.3f)", e.mean, e.low, e.high)
    }

    static func pfmt(_ p: Double?) -> String {
        guard let p else { return "" }
        return p < 0.001 ? "p < 0.001" : String(format: "p = %.3f", p)
    }

    static func bytes(_ b: Int?) -> String {
        guard let b else { return "—" }
        let mb = Double(b) / 1_048_576
        return mb >= 1024 ? String(format: "%.2f GiB", mb / 1024) : String(format: "%.1f MiB", mb)
    }

    static func seconds(_ s: Double?) -> String {
        guard let s else { return "—" }
        return s >= 120 ? String(format: "%.1f min", s / 60) : String(format: "%.1f s", s)
    }

    /// The seed articles' RAG vs fine-tuning table, with this run's measurements.
    static func tradeoffRows(_ r: ComparisonReport) -> [(String, String, String)] {
        let c = r.costs, m = r.primary
        let rag = r.summary(.rag), tuned = r.summary(.tuned)
        var rows: [(String, String, String)] = []
        rows.append(("Data needs",
                     c.indexDocuments.map { "\($0) documents → \(c.indexChunks ?? 0) chunks" } ?? "a document collection",
                     c.trainingExamples.map { "\($0) training examples" } ?? "labelled examples"))
        let fr = r.freshness?.first { $0.system == .rag }?.metrics[m]?.mean
        let ft = r.freshness?.first { $0.system == .tuned }?.metrics[m]?.mean
        rows.append(("Flexibility (new data)",
                     "new documents are answerable once ingested" + (fr.map { String(format: "; new facts: %.3f %@", $0, Advisor.metricTitle(m)) } ?? ""),
                     "retrain for new knowledge" + (c.trainingSeconds.map { " (" + seconds($0) + " per run)" } ?? "") + (ft.map { String(format: "; new facts: %.3f %@", $0, Advisor.metricTitle(m)) } ?? "")))
        rows.append(("Compute (build)",
                     c.indexSeconds.map { "index: " + seconds($0) + ", " + bytes(c.indexBytes) } ?? (c.indexBytes.map { "index: " + bytes($0) } ?? "—"),
                     c.trainingSeconds.map { "training: " + seconds($0) + ", peak " + bytes(c.trainingPeakBytes) + (c.trainingTokensPerSecond.map { String(format: ", %.0f tokens/s", $0) } ?? "") } ?? "—"))
        rows.append(("Compute (per answer)",
                     rag.map { String(format: "p50 %.0f ms, p95 %.0f ms", $0.latencyP50Ms, $0.latencyP95Ms) } ?? "—",
                     tuned.map { String(format: "p50 %.0f ms, p95 %.0f ms", $0.latencyP50Ms, $0.latencyP95Ms) } ?? "—"))
        rows.append(("Complexity", "collection + retriever + reranker + prompt with sources",
                     "training run + adapter" + (c.adapterBytes.map { " (" + bytes($0) + ")" } ?? "")))
        rows.append(("Quality (\(Advisor.metricTitle(m)))", fmt(rag?.metrics[m]), fmt(tuned?.metrics[m])))
        return rows
    }

    public static func markdown(_ r: ComparisonReport) -> String {
        let metrics = Summaries.metricNames(r.kind).filter { m in r.summaries.contains { $0.metrics[m] != nil } }
        var s = "# \(r.title)\n\n"
        s += "Model `\(r.model)`, \(r.items) \(r.kind.rawValue) items from `\(r.evalPath)`, \(r.date). Greedy decoding, identical prompts for every system; "
        s += "95% bootstrap intervals in parentheses, p-values from a paired randomization test against the base model.\n\n"
        s += "## Recommendation\n\n**\(r.recommendation.headline)**\n\n"
        for reason in r.recommendation.reasons { s += "- \(reason)\n" }
        if !r.recommendation.reasons.isEmpty { s += "\n" }
        s += "Declared: data changes \(r.declared.changes.rawValue)"
        if let l = r.declared.latencyBudgetMs { s += String(format: ", latency budget %.0f ms (p95)", l) }
        if let t = r.declared.trainingBudgetMinutes { s += String(format: ", training budget %.0f min", t) }
        s += ".\n\n## Quality\n\n| system | " + metrics.map(Advisor.metricTitle).joined(separator: " | ") + " |\n"
        s += "| --- |" + String(repeating: " ---: |", count: metrics.count) + "\n"
        for sum in r.summaries {
            s += "| \(sum.system.title) | " + metrics.map { m in
                var cell = fmt(sum.metrics[m])
                if let p = sum.pValueVsBase[m] { cell += "<br>" + pfmt(p) }
                return cell
            }.joined(separator: " | ") + " |\n"
        }
        s += "\n## Cost\n\n| system | latency p50 | latency p95 | time to first token p50 | tokens/s |\n| --- | ---: | ---: | ---: | ---: |\n"
        for sum in r.summaries {
            s += String(format: "| %@ | %.0f ms | %.0f ms | %.0f ms | %.1f |\n", sum.system.title, sum.latencyP50Ms, sum.latencyP95Ms, sum.timeToFirstTokenP50Ms, sum.tokensPerSecond)
        }
        let c = r.costs
        s += "\nBuilding: "
        var parts: [String] = []
        if let t = c.trainingSeconds {
            parts.append("training " + seconds(t) + " (peak memory " + bytes(c.trainingPeakBytes) + (c.trainingTokensPerSecond.map { String(format: ", %.0f tokens/s", $0) } ?? "") + ")")
        }
        if let t = c.classifierTrainingSeconds {
            parts.append("encoder classifier training " + seconds(t) + (c.classifierExamplesPerSecond.map { String(format: " (%.1f examples/s)", $0) } ?? "")
                         + (c.classifierBytes.map { ", model " + bytes($0) } ?? ""))
        }
        if c.indexSeconds != nil || c.indexBytes != nil {
            parts.append("index " + (c.indexSeconds.map(seconds) ?? "prebuilt") + ", " + bytes(c.indexBytes) + (c.indexChunks.map { " for \($0) chunks" } ?? ""))
        }
        s += (parts.isEmpty ? "nothing to build" : parts.joined(separator: "; ")) + ".\n"
        if let fresh = r.freshness, let n = r.freshItems {
            s += "\n## Freshness: \(n) questions about documents added after training\n\n| system | " + Advisor.metricTitle(r.primary) + " |\n| --- | ---: |\n"
            for f in fresh { s += "| \(f.system.title) | \(fmt(f.metrics[r.primary])) |\n" }
        }
        s += "\n## RAG or fine-tuning, measured\n\n| | RAG | Fine-tuning |\n| --- | --- | --- |\n"
        for (k, a, b) in tradeoffRows(r) { s += "| \(k) | \(a) | \(b) |\n" }
        if !r.notes.isEmpty { s += "\n## Notes\n\n" + r.notes.map { "- \($0)\n" }.joined() }
        s += "\nCharts: see report.html.\n"
        return s
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Bars of the primary metric per system, with the 95% interval as error bars.
    public static func barChart(_ r: ComparisonReport) -> String {
        let m = r.primary, W = 560.0, H = 300.0, left = 50.0, bottom = 50.0, top = 30.0
        let sums = r.summaries.filter { $0.metrics[m] != nil }
        let maxV = max(0.05, sums.map { $0.metrics[m]!.high }.max() ?? 1) * 1.1
        let bw = (W - left - 20) / Double(max(1, sums.count))
        func y(_ v: Double) -> Double { top + (1 - v / maxV) * (H - top - bottom) }
        let colors: [SystemKind: String] = [.base: "#969696", .rag: "#3182bd", .tuned: "#e6550d", .tunedRAG: "#31a354", .classifier: "#756bb1"]
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"12\">"
        s += "<text x=\"\(Int(W / 2))\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">\(esc(Advisor.metricTitle(m))) per system (95% interval)</text>"
        for k in 0...4 {
            let v = maxV * Double(k) / 4
            s += String(format: "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>", left, W - 10, y(v), y(v), left - 5, y(v) + 4, v)
        }
        for (i, sum) in sums.enumerated() {
            let e = sum.metrics[m]!, x = left + Double(i) * bw + bw * 0.15, w = bw * 0.7
            s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"/>", x, y(e.mean), w, y(0) - y(e.mean), colors[sum.system]!)
            let cx = x + w / 2
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>", cx, cx, y(e.low), y(e.high))
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>",
                            cx - 6, cx + 6, y(e.low), y(e.low), cx - 6, cx + 6, y(e.high), y(e.high))
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.3f</text>", cx, y(e.high) - 5, e.mean)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>", cx, H - bottom + 18, esc(sum.system.title))
        }
        return s + "</svg>"
    }

    /// Quality against cost per answer (latency p50), one point per system.
    public static func costChart(_ r: ComparisonReport) -> String {
        let m = r.primary, W = 560.0, H = 300.0, left = 60.0, bottom = 45.0, top = 30.0, right = 20.0
        let sums = r.summaries.filter { $0.metrics[m] != nil }
        let maxX = max(1, sums.map(\.latencyP50Ms).max() ?? 1) * 1.15
        let maxY = max(0.05, sums.map { $0.metrics[m]!.high }.max() ?? 1) * 1.1
        func px(_ v: Double) -> Double { left + v / maxX * (W - left - right) }
        func py(_ v: Double) -> Double { top + (1 - v / maxY) * (H - top - bottom) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"12\">"
        s += "<text x=\"\(Int(W / 2))\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">\(esc(Advisor.metricTitle(m))) against latency per answer (p50)</text>"
        s += String(format: "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/><line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>",
                        left, W - right, H - bottom, H - bottom, left, left, top, H - bottom)
        s += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">latency p50 (ms)</text><text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.0f</text>", (left + W - right) / 2, H - 8, W - right, H - bottom + 16, maxX)
        for k in 0...4 {
            let v = maxY * Double(k) / 4
            s += String(format: "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>", left - 5, py(v) + 4, v)
        }
        s += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">0</text>", left, H - bottom + 16)
        for sum in sums {
            let e = sum.metrics[m]!
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>", px(sum.latencyP50Ms), px(sum.latencyP50Ms), py(e.low), py(e.high))
            s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#3182bd\"/><text x=\"%.1f\" y=\"%.1f\">%@</text>", px(sum.latencyP50Ms), py(e.mean), px(sum.latencyP50Ms) + 8, py(e.mean) + 4, esc(sum.system.title))
        }
        return s + "</svg>"
    }

    public static func html(_ r: ComparisonReport) -> String {
        // The Markdown tables as HTML, so both reports say the same.
        var body = ""
        var inTable = false, header = true
        for line in markdown(r).split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("|") {
                let cells = line.trimmingCharacters(in: .whitespaces).dropFirst().dropLast().split(separator: "|", omittingEmptySubsequences: false)
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                if cells.allSatisfy({ $0.hasPrefix("---") || $0.hasPrefix(":--") || $0.hasSuffix("--:") }) { header = false; continue }
                if !inTable { body += "<table>"; inTable = true; header = true }
                let tag = header ? "th" : "td"
                body += "<tr>" + cells.map { "<\(tag)>\(inline(esc($0).replacingOccurrences(of: "&lt;br&gt;", with: "<br>")))</\(tag)>" }.joined() + "</tr>"
                continue
            }
            if inTable { body += "</table>\n"; inTable = false }
            if line.hasPrefix("# ") { body += "<h1>\(esc(String(line.dropFirst(2))))</h1>\n" }
            else if line.hasPrefix("## ") {
                let h = String(line.dropFirst(3))
                body += "<h2>\(esc(h))</h2>\n"
                if h == "Quality" { body += "<div class=\"charts\">" + barChart(r) + costChart(r) + "</div>\n" }
            }
            else if line.hasPrefix("- ") { body += "<ul><li>\(inline(esc(String(line.dropFirst(2)))))</li></ul>\n" }
            else if line.hasPrefix("Charts:") { continue }
            else if !line.isEmpty { body += "<p>\(inline(esc(line)))</p>\n" }
        }
        if inTable { body += "</table>\n" }
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(esc(r.title))</title>
        <style>
        body { font-family: -apple-system, "Segoe UI", sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; }
        table { border-collapse: collapse; margin: 1em 0; } th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
        th { background: #f4f4f4; } .charts svg { margin: 0.5em 1em 0.5em 0; } code { background: #f4f4f4; padding: 0 3px; }
        </style></head><body>
        \(body)
        </body></html>

        """
    }

    /// `code` and **bold** in a line of Markdown.
    static func inline(_ s: String) -> String {
        var out = s
        out = out.replacingOccurrences(of: #"\*\*(.+?)\*\*"#, with: "<strong>$1</strong>", options: .regularExpression)
        out = out.replacingOccurrences(of: #"`(.+?)`"#, with: "<code>$1</code>", options: .regularExpression)
        return out
    }

    public static func write(_ r: ComparisonReport, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try markdown(r).write(toFile: directory + "/report.md", atomically: true, encoding: .utf8)
        try html(r).write(toFile: directory + "/report.html", atomically: true, encoding: .utf8)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(r).write(to: URL(fileURLWithPath: directory + "/report.json"), options: .atomic)
    }
}
