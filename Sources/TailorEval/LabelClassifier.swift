// A language model used as a classifier by prompting: the item's input goes into a prompt
// template, the model answers greedily in a few tokens, and the answer is mapped to a label.
import Foundation
import TailorModels

public struct LabelClassifier {
    public let model: LanguageModel
    public let labels: [String]
    /// The user message; {input} is replaced by the item's text and {labels} by the labels.
    public let template: String
    public var maxTokens = 8

    public static let defaultTemplate = "Classify the text as one of: {labels}. Answer with the label only.\n\nText: {input}"

    public init(model: LanguageModel, labels: [String], template: String = LabelClassifier.defaultTemplate) {
        self.model = model
        self.labels = labels
        self.template = template
    }

    public func prompt(_ input: String) -> String {
        template.replacingOccurrences(of: "{labels}", with: labels.joined(separator: ", ")).replacingOccurrences(of: "{input}", with: input)
    }

    public struct Prediction: Sendable {
        public var label: String?
        public var answer: String
        public var seconds: Double
    }

    public func predict(_ input: String) throws -> Prediction {
        let start = Date()
        let ids = model.encodeChat(try model.chatTemplate.render([.user(prompt(input))], addGenerationPrompt: true))
        var p = SamplingParameters()
        p.temperature = 0
        let r = try model.generator().generate(prompt: ids, maxTokens: maxTokens, sampling: p, stop: ["\n"],
                                               cache: model.makeCache(maxTokens: ids.count + maxTokens + 1)) { _ in true }
        return Prediction(label: LabelClassifier.match(r.text, labels: labels), answer: r.text, seconds: Date().timeIntervalSince(start))
    }

    /// The label an answer names: the one it starts with, else the first one it mentions
    /// (normalized as SQuAD does); nil when it names none.
    public static func match(_ answer: String, labels: [String]) -> String? {
        let a = Metric.normalize(answer)
        let normalized = labels.map { (label: $0, n: Metric.normalize($0)) }.filter { !$0.n.isEmpty }
        // Longest first, so "very positive" wins over "positive".
        for l in normalized.sorted(by: { $0.n.count > $1.n.count }) where a == l.n || a.hasPrefix(l.n + " ") { return l.label }
        let padded = " " + a + " "
        let found = normalized.compactMap { l -> (String, String.Index)? in
            padded.range(of: " " + l.n + " ").map { (l.label, $0.lowerBound) }
        }
        return found.min { $0.1 < $1.1 }?.0
    }
}
