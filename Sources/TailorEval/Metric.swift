// Metrics of the comparison, per item, and the statistics over items: bootstrap confidence
// intervals and a paired significance test between two systems on the same items.
//   QA: exact match and token F1 on SQuAD-normalized text (lower case, no punctuation, no
//       articles, single spaces), and "contains" (a normalized reference inside the answer).
//   Classification: accuracy and macro-F1.
//   Generation: ROUGE-L (F of the longest common token subsequence) and chrF (character
//       n-grams up to 6, β = 2, Popović 2015).
import Foundation
import TailorModels

public enum Metric {
    // MARK: text normalization

    /// SQuAD's normalization: lower case, punctuation removed, articles (a, an, the) removed,
    /// whitespace collapsed.
    public static func normalize(_ s: String) -> String {
        let lowered = s.lowercased()
        var noPunct = ""
        noPunct.unicodeScalars.reserveCapacity(lowered.unicodeScalars.count)
        for u in lowered.unicodeScalars where !CharacterSet.punctuationCharacters.contains(u) && !CharacterSet.symbols.contains(u) {
            noPunct.unicodeScalars.append(u)
        }
        return noPunct.split(whereSeparator: { $0.isWhitespace }).filter { !["a", "an", "the"].contains($0) }.joined(separator: " ")
    }

    public static func tokens(_ s: String) -> [String] { normalize(s).split(separator: " ").map(String.init) }

    // MARK: QA

    public static func exactMatch(_ prediction: String, _ references: [String]) -> Double {
        let p = normalize(prediction)
        return references.contains { normalize($0) == p } ? 1 : 0
    }

    public static func tokenF1(_ prediction: String, _ references: [String]) -> Double {
        references.map { f1(tokens(prediction), tokens($0)) }.max() ?? 0
    }

    static func f1(_ p: [String], _ r: [String]) -> Double {
        if p.isEmpty || r.isEmpty { return p.isEmpty && r.isEmpty ? 1 : 0 }
        var counts: [String: Int] = [:]
        for t in r { counts[t, default: 0] += 1 }
        var common = 0
        for t in p where (counts[t] ?? 0) > 0 { common += 1; counts[t]! -= 1 }
        if common == 0 { return 0 }
        let precision = Double(common) / Double(p.count), recall = Double(common) / Double(r.count)
        return 2 * precision * recall / (precision + recall)
    }

    /// 1 when a normalized reference occurs in the normalized prediction (as whole words).
    public static func contains(_ prediction: String, _ references: [String]) -> Double {
        let p = " " + normalize(prediction) + " "
        return references.contains { r in let n = normalize(r); return !n.isEmpty && p.contains(" " + n + " ") } ? 1 : 0
    }

    // MARK: classification

    /// Mean over labels of each label's F1 (labels that occur as gold or prediction).
    public static func macroF1(predictions: [String?], gold: [String]) -> Double {
        let labels = Set(gold).union(predictions.compactMap { $0 })
        guard !labels.isEmpty else { return 0 }
        var total = 0.0
        for l in labels {
            var tp = 0, fp = 0, fn = 0
            for (p, g) in zip(predictions, gold) {
                if p == l && g == l { tp += 1 } else if p == l { fp += 1 } else if g == l { fn += 1 }
            }
            total += tp == 0 ? 0 : 2 * Double(tp) / Double(2 * tp + fp + fn)
        }
        return total / Double(labels.count)
    }

    // MARK: generation

    public static func rougeL(_ prediction: String, _ reference: String) -> Double {
        let p = tokens(prediction), r = tokens(reference)
        guard !p.isEmpty, !r.isEmpty else { return p.isEmpty && r.isEmpty ? 1 : 0 }
        var prev = [Int](repeating: 0, count: r.count + 1), cur = prev
        for i in 1...p.count {
            for j in 1...r.count { cur[j] = p[i - 1] == r[j - 1] ? prev[j - 1] + 1 : max(prev[j], cur[j - 1]) }
            swap(&prev, &cur)
        }
        let lcs = Double(prev[r.count])
        if lcs == 0 { return 0 }
        let precision = lcs / Double(p.count), recall = lcs / Double(r.count)
        return 2 * precision * recall / (precision + recall)
    }

    /// chrF (β = 2): character n-gram (n = 1…6, spaces removed) precision and recall averaged
    /// over n, combined as an F-score weighting recall β times as much.
    public static func chrF(_ prediction: String, _ reference: String, maxN: Int = 6, beta: Double = 2) -> Double {
        let p = Array(prediction.filter { !$0.isWhitespace }), r = Array(reference.filter { !$0.isWhitespace })
        var precisions: [Double] = [], recalls: [Double] = []
        for n in 1...maxN {
            func grams(_ s: [Character]) -> [String: Int] {
                var g: [String: Int] = [:]
                if s.count >= n { for i in 0...(s.count - n) { g[String(s[i..<(i + n)]), default: 0] += 1 } }
                return g
            }
            let gp = grams(p), gr = grams(r)
            let tp = gp.values.reduce(0, +), tr = gr.values.reduce(0, +)
            guard tp > 0, tr > 0 else { continue }
            let match = gp.reduce(0) { $0 + min($1.value, gr[$1.key] ?? 0) }
            precisions.append(Double(match) / Double(tp))
            recalls.append(Double(match) / Double(tr))
        }
        guard !precisions.isEmpty else { return 0 }
        let cp = precisions.reduce(0, +) / Double(precisions.count), cr = recalls.reduce(0, +) / Double(recalls.count)
        if cp + cr == 0 { return 0 }
        let b2 = beta * beta
        return (1 + b2) * cp * cr / (b2 * cp + cr)
    }
}

/// A mean with its 95% bootstrap confidence interval.
public struct Estimate: Codable, Sendable, Equatable {
    public var mean: Double
    public var low: Double
    public var high: Double
    public var count: Int

    /// Percentile bootstrap over items, seeded (the same values give the same interval).
    public init(_ values: [Double], resamples: Int = 2000, seed: UInt64 = 7) {
        count = values.count
        guard !values.isEmpty else { mean = 0; low = 0; high = 0; return }
        mean = values.reduce(0, +) / Double(values.count)
        var rng = SplitMix64(seed: seed)
        var means: [Double] = []
        means.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var s = 0.0
            for _ in 0..<values.count { s += values[Int(rng.next() % UInt64(values.count))] }
            means.append(s / Double(values.count))
        }
        means.sort()
        low = means[Int(0.025 * Double(resamples))]
        high = means[min(resamples - 1, Int(0.975 * Double(resamples)))]
    }

    /// A statistic of the whole set (macro-F1) with its interval from resampled item sets.
    public init(resampling items: Int, resamples: Int = 2000, seed: UInt64 = 7, _ statistic: ([Int]) -> Double) {
        count = items
        mean = statistic(Array(0..<items))
        guard items > 0 else { low = 0; high = 0; return }
        var rng = SplitMix64(seed: seed)
        var stats: [Double] = []
        for _ in 0..<resamples { stats.append(statistic((0..<items).map { _ in Int(rng.next() % UInt64(items)) })) }
        stats.sort()
        low = stats[Int(0.025 * Double(resamples))]
        high = stats[min(resamples - 1, Int(0.975 * Double(resamples)))]
    }
}

public enum Significance {
    /// Two-sided p-value of a paired approximate randomization test: how often randomly swapping
    /// the two systems' scores item by item gives a mean difference at least as large as observed.
    public static func pairedPValue(_ a: [Double], _ b: [Double], rounds: Int = 5000, seed: UInt64 = 11) -> Double {
        precondition(a.count == b.count)
        guard !a.isEmpty else { return 1 }
        let d = zip(a, b).map { $0 - $1 }
        let observed = abs(d.reduce(0, +))
        if observed == 0 { return 1 }
        var rng = SplitMix64(seed: seed)
        var atLeast = 0
        for _ in 0..<rounds {
            var s = 0.0
            for x in d { s += (rng.next() & 1) == 0 ? x : -x }
            if abs(s) >= observed - 1e-12 { atLeast += 1 }
        }
        return Double(atLeast + 1) / Double(rounds + 1)
    }
}
