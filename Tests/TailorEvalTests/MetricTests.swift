import Foundation
import Testing
@testable import TailorEval

@Suite struct MetricTests {
    @Test func squadNormalizationAndQAMetrics() {
        #expect(Metric.normalize("The  Eiffel-Tower, in Paris!") == "eiffeltower in paris")
        #expect(Metric.exactMatch("the Paris.", ["Paris"]) == 1)
        #expect(Metric.exactMatch("Paris, France", ["Paris"]) == 0)
        // F1 of "paris france" vs "paris": precision 1/2, recall 1 → 2/3.
        #expect(abs(Metric.tokenF1("Paris, France", ["Paris"]) - 2.0 / 3.0) < 1e-12)
        #expect(Metric.tokenF1("London", ["Paris", "london"]) == 1)
        #expect(Metric.contains("It is in Paris, France.", ["paris"]) == 1)
        #expect(Metric.contains("Parisian food", ["paris"]) == 0)
    }

    @Test func classificationMetrics() {
        let gold = ["pos", "pos", "neg", "neg"]
        let pred: [String?] = ["pos", "neg", "neg", nil]
        // pos: tp 1, fn 1 → F1 2/3; neg: tp 1, fp 1, fn 1 → 1/2.
        #expect(abs(Metric.macroF1(predictions: pred, gold: gold) - (2.0 / 3.0 + 0.5) / 2) < 1e-12)
        #expect(LabelClassifier.match("Positive.", labels: ["positive", "negative"]) == "positive")
        #expect(LabelClassifier.match("I think it is negative, not positive", labels: ["positive", "negative"]) == "negative")
        #expect(LabelClassifier.match("very positive", labels: ["positive", "very positive"]) == "very positive")
        #expect(LabelClassifier.match("no idea", labels: ["positive", "negative"]) == nil)
    }

    @Test func generationMetrics() {
        #expect(Metric.rougeL("the cat sat on the mat", "the cat sat on the mat") == 1)
        // Tokens after normalization: [cat, sat, mat] vs [cat, lay, on, mat]: LCS 2, P 2/3, R 2/4.
        #expect(abs(Metric.rougeL("The cat sat; the mat", "cat lay on mat") - (2 * (2.0 / 3) * 0.5 / (2.0 / 3 + 0.5))) < 1e-12)
        #expect(abs(Metric.chrF("abc", "abc") - 1) < 1e-12)
        #expect(Metric.chrF("xyz", "abc") == 0)
        // "thecat" vs "thehat": n-gram precision = recall = 5/6, 3/5, 1/4, 0, 0, 0 for n = 1…6.
        let partial = Metric.chrF("the cat", "the hat")
        #expect(abs(partial - (5.0 / 6 + 3.0 / 5 + 1.0 / 4) / 6) < 1e-12, "\(partial)")
    }

    @Test func bootstrapAndSignificance() {
        let v = (0..<200).map { Double($0 % 4 == 0 ? 0 : 1) }   // mean 0.75
        let e = Estimate(v)
        #expect(e.mean == 0.75)
        #expect(e.low < 0.75 && e.high > 0.75 && e.high - e.low < 0.15 && e.high - e.low > 0.05)
        #expect(Estimate(v) == e, "seeded: the same interval every time")
        let better = v.map { _ in 1.0 }
        #expect(Significance.pairedPValue(better, v) < 0.001)
        #expect(Significance.pairedPValue(v, v) == 1)
    }
}
