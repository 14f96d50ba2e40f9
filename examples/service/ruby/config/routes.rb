Rails.application.routes.draw do
  resources :orders, only: [:show]
  get "orders/:id/mine", to: "orders#show_mine"
  post "orders/import", to: "orders#import"
end
