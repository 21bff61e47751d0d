// Fitting a conversation into the context window: the oldest turns go first, never the system
// prompt or the newest message.
import TailorTokenizers

extension LanguageModel {
    /// The prompt tokens of `history` rendered with the chat template (generation prompt added),
    /// after dropping the oldest turns until they fit `budget` tokens; `history` keeps what fit.
    /// A newest message longer than the budget alone is an error.
    public func fitToContext(_ history: inout [ChatMessage], budget: Int) throws -> [Int] {
        while true {
            let ids = encodeChat(try chatTemplate.render(history, addGenerationPrompt: true))
            if ids.count <= budget { return ids }
            let first = history.first?.role == "system" ? 1 : 0
            if history.count - first <= 1 { throw ModelError.promptTooLong(tokens: ids.count, budget: budget) }
            history.remove(at: first)
        }
    }
}
